"""Prediction: fill a gap in the sky with a trained generator (scripts/predict_sky.py).

The steps, one module each: options (the command line), inputs (a model's bands and normalisation,
as training fed them), render (the input surveys sampled on a tile's pixels), generate (the model from
its checkpoint, batched passes, hashed dropout), session (one run's model, surveys and renderer),
region (HiPS tiles over a region, shards, finish), position (one field as FITS, PNG and HTML) and
truth (agreement with the real band by kind of sky, the spread's calibration)."""
