"""Reports: records -> pandas tables, seaborn plots, self-contained HTML. No TensorFlow here."""
