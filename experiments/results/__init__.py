r"""Runs the catalogue's experiments; writes RESULTS.md, GALLERY.md, USES.md.

  python -m experiments.results                      # all, then RESULTS.md
  python -m experiments.results --only=vae_mlp_digits,vae_conv_digits
  python -m experiments.results --quick --runs_dir=/tmp/q --out=/tmp/q/R.md
  python -m experiments.results --render_only        # the pages, no runs

Run from the project root (configs name data paths relative to it).

What runs is `experiments.catalogue`: each experiment is a config preset
plus overrides, trained in its own workdir ``<runs_dir>/<name>`` and
evaluated on the test split exactly as `experiments.main` does
(`main.train_and_evaluate`, with the config's final estimators, e.g. the
ELBO and the IWAE bound with k = 5000), then measured by the evaluations
its entry names (`jaxgen.evaluations`: codebook usage of VQ models, the
codebook figure, sample-quality scores, whose classifier is trained once
into ``<runs_dir>/classifier_<dataset>``). Its numbers are saved as
``<runs_dir>/<name>/result.json`` and, for full runs, copied to
``results/<name>.json`` (tracked in git: workdirs are not, so the records
are what RESULTS.md is rendered from and what survives a fresh clone); a
stored result that lacks an evaluation gets it measured from its checkpoint
while the workdir exists. RESULTS.md is then regenerated from the records of
every experiment, and GALLERY.md beside it (one sample grid per family;
both never by hand), and results/USES.md from the JSON of
`experiments.uses` under results/uses (`render.write_uses`, the renderer
of ``python -m experiments.uses render``), so results accumulate across
invocations and clones:

- an experiment with a result.json is not run again (unless --rerun or
  --fresh);
- without one, it runs; a workdir whose checkpoint already reached
  num_steps is not retrained (the trainer resumes and stops at once), only
  evaluated, and its row says the training time was not measured;
- --rerun ignores existing results (resume + evaluate again);
  --fresh deletes the workdirs first and trains from scratch.

Each row names the exact `experiments.main` command that reproduces it (the
same training, and the same evaluation with the same keys).

--quick shrinks everything (a few steps, a small k) to check that the
machinery works; its RESULTS.md says so at the top, and by default it goes
to ``<runs_dir>/RESULTS.md`` (runs_dir defaulting to runs/results_quick),
never to the project's RESULTS.md. Quick and full results never mix in one
runs_dir.

Modules: `specs` (a catalogue entry's config and command line), `records`
(the JSON records, staleness), `run` (training, evaluations, records),
`render` (Markdown); the command line is ``__main__``.
"""
