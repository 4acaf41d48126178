"""sashimi-mos-tools: mean-opinion-score listening tests on Amazon Mechanical Turk.

Selecting samples, building HIT batches and HTML templates, and scoring MOS with rater
filtering and confidence intervals. Needs neither torch nor any other package of the project.
"""
