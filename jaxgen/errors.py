"""The project's error types.

Every bad input gets one clear error that names the field and what was
expected, raised before anything is compiled. Both types derive from
``ValueError`` so callers that catch ``ValueError`` keep working.
"""


class ConfigError(ValueError):
  """A configuration field holds a value the project cannot use."""


class DataError(ValueError):
  """A dataset, file or array does not have the expected form."""
