"""The statistics: over samples, over workers (replicates), and the A/B sequential rule."""
