"""Code that runs on Spark: a session builder and jobs with ``main(argv)`` over pure DataFrame functions."""
