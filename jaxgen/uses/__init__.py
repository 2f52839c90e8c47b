"""What trained generative models are for, as evaluations of a workdir.

* `scoring`: per-example log-likelihoods of arbitrary uint8 images under a
  restored run (class-conditional runs: per class, or marginalised over the
  training prior), and features from a family's encoder;
* `bayes`: classification by Bayes' rule, p(y|x) ∝ p(x|y) p(y), with a
  reject option on log p(x);
* `probe`: linear probes (multinomial logistic regression) on features
  against the number of labels.

``python -m experiments.uses {ood,bayes,probe} --workdir=W`` runs them.
These modules sit beside `jaxgen.evaluate` and `jaxgen.quality`: above the
trainer, below `experiments`.
"""
