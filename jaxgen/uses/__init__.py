"""What trained generative models are for, as evaluations of a workdir.

* `scoring`: per-example log-likelihoods of arbitrary uint8 images under a
  restored run (class-conditional runs: per class, or marginalised over the
  training prior), and features from a family's encoder;
* `bayes`: classification by Bayes' rule, p(y|x) ∝ p(x|y) p(y), with a
  reject option on log p(x) or max_y log p(x, y);
* `probe`: linear probes (multinomial logistic regression) on features
  against the number of labels, and the registry of what each family
  gives as features (`probe.FEATURES`);
* `reports`: the three as JSON-able reports over a restored run, with the
  likelihood-ratio outlier score against a background run (Ren et al.
  2019) beside likelihood, typicality and input complexity.

``python -m experiments.uses {ood,bayes,probe,perturb} --workdir=W`` runs
them.
These modules sit beside `jaxgen.evaluate` and `jaxgen.quality`: above the
trainer, below `experiments`.
"""
