"""Reading error messages the way a user does: does this text point at my file, line, layer?

Plain text analysis, no TensorFlow, so it is tested in milliseconds. TensorFlow writes source
references in three shapes, all recognised here:

- Python tracebacks and tf.function's "defined at" blocks: `File "/path/cases/cnn.py", line 135`
  (XLA's "The op is created at" drops the leading slash: `File "path/cases/cnn.py", line 135`);
- check_numerics reports: `/path/cases/cnn.py (L135)`, with long paths shortened on the left
  to `...ages/tensorflow/python/ops/x.py (L88)`;
- the compact `path.py:135` form.
"""

from __future__ import annotations

import os
import re

_REFERENCES = (
    re.compile(r'File "([^"]+)", line (\d+)'),
    re.compile(r"(\S+\.py) \(L(\d+)\)"),
    re.compile(r"(\S+\.py):(\d+)\b"),
)
_NUMERICS = ("Tensor had NaN values", "Tensor had Inf values", "Detected Infinity or NaN")
_REPORTED_OP = re.compile(r'op "([^"]+)"')


def source_references(text: str) -> list[tuple[str, int]]:
    """Every (file, line) the text mentions, in order."""
    found = []
    for pattern in _REFERENCES:
        found += [(m.group(1), int(m.group(2))) for m in pattern.finditer(text)]
    return found


def same_file(reference: str, path: str) -> bool:
    """Whether a possibly shortened or slash-less file reference names `path`."""
    ref = reference[3:] if reference.startswith("...") else reference
    ref = ref.lstrip("/")
    base = os.path.basename(path)
    return len(ref) >= len(base) and ref.endswith(base) and path.endswith(ref)


def names_source(text: str, path: str, line: int) -> bool:
    """Whether the text names `path` at `line` in any of the shapes TensorFlow uses."""
    return any(same_file(ref, path) and ref_line == line
               for ref, ref_line in source_references(text))


def names_layer(text: str, names: list[str] | tuple[str, ...]) -> bool:
    """Whether a layer name appears as a whole name (`pool2`, `cnn_1/pool2_1/add`).

    Keras and tf.function suffix scopes with `_1`; `conv1` must not match `conv10` or the
    batch-norm layer `conv1__bn`.
    """
    for name in names:
        pattern = (r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?:_\d+)?(?![A-Za-z0-9_])")
        if re.search(pattern, text):
            return True
    return False


def is_numerics_report(text: str) -> bool:
    """Whether the text is TensorFlow's report of a NaN/Inf (check_numerics), not another error."""
    return any(marker in text for marker in _NUMERICS)


def reported_op(text: str) -> str | None:
    """The op type a check_numerics report blames (`... of graph op "Log" ...`)."""
    match = _REPORTED_OP.search(text)
    return match.group(1) if match else None


def short_error(exc: BaseException, limit: int = 90) -> str:
    """`Type: first line` with digits masked, so generated names do not vary between runs."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    first = re.sub(r"\d+", "N", first)
    if len(first) > limit:
        first = first[: limit - 3] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
