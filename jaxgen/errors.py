"""The project's error types.

Every bad input gets one clear error that names the field and what was
expected, raised before anything is compiled. Both types derive from
``ValueError`` so callers that catch ``ValueError`` keep working.

A workdir that cannot be used is one of them too, so the command line
reports it the same way (one ``error:`` line, status 2): checkpoints that
are all corrupt or unreadable, or a save that failed, are a `DataError`
(`CheckpointError`); a workdir another training run holds is a
`ConfigError` (`WorkdirLockedError`, the --workdir value).
"""


class ConfigError(ValueError):
  """A configuration field holds a value the project cannot use."""


class DataError(ValueError):
  """A dataset, file or array does not have the expected form."""


class CheckpointError(DataError):
  """No checkpoint of a workdir can be used (corrupt or unreadable files)."""


class CheckpointSaveError(CheckpointError):
  """Writing a checkpoint failed (disk full, permissions); training stops."""


class WorkdirLockedError(ConfigError):
  """The --workdir is held by another training run."""
