"""The scripts' shared entry point: bad input is one ``error:`` line, status 2.

Every command line under experiments/ ends with

  if __name__ == '__main__':
    _FLAGS = define_flags()
    entry.run(lambda argv: main(argv, _FLAGS))

`run` is absl's `app.run` with two changes. Its flags parser
(`parse_command_line`) turns absl's and ml_collections' errors (an unknown
flag, a value of the wrong type, a missing required flag, a ``--config``
file that does not load, an unknown ``--config.*`` field, a tuple override
that is not numbers) into one line naming the flag and what was expected,
where absl prints a FATAL message or a traceback. And the script's own
refusals (`absl.app.UsageError`, `UsageError`, `jaxgen.errors.ConfigError`
and `DataError` raised by its main) become that line too, where absl prints
the whole usage text. Either way the process exits with `EXIT_BAD_INPUT`;
``--help`` and ``--helpfull`` work as before.

Before anything else, `run` adds the XLA options every experiment runs with
to ``XLA_FLAGS`` (`set_xla_flags`): XLA reads the variable once, when JAX
starts its first backend, which no script does on import.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any, Callable, NoReturn, Sequence

from absl import app
from absl import flags
import ml_collections
from ml_collections import config_flags
from ml_collections.config_flags import config_path
# The parser of a config-file flag: it loads the file as the flag does.
from ml_collections.config_flags.config_flags import ConfigFileFlagParser

from jaxgen.errors import ConfigError
from jaxgen.errors import DataError
from jaxgen.nn import conv as conv_lib

EXIT_BAD_INPUT = 2

# ------------------------------------------------------------- XLA options
# The XLA:CPU options the experiments run with (README "Performance").
#
# --xla_cpu_experimental_ynn_fusion_type=-individual_convolution: jaxlib
# 0.10's XLA:CPU hands dots, convolutions and reductions to YNNPACK by
# default, and YNNPACK computes a convolution's kernel gradient far below
# the matmul rate; the flag sends convolutions back to Eigen (dots and
# reductions stay on YNNPACK). A convolution then rounds differently, so
# results change within float32 rounding, and the masked layers run as
# XLA's convolutions (`jaxgen.nn.masked.choose_method`).
#
# XLA aborts the whole process on a flag it does not know, and this one is
# experimental (it may be renamed or retired in any release): it is added
# only under the jaxlib versions it was measured on (`XLA_FLAGS_JAXLIBS`);
# under any other jaxlib the experiments run with XLA's defaults until the
# flag is measured again there. Checking the installed XLA instead would
# cost a child process per command (a probe) or a search of jaxlib's
# shared library. The flag belongs to XLA's debug options, which every
# backend of the same jaxlib parses: on GPU or TPU it is accepted and
# changes nothing.
YNN_FUSION_FLAG = conv_lib.YNN_FUSION_FLAG
DEFAULT_XLA_FLAGS = (f'{YNN_FUSION_FLAG}=-individual_convolution',)
XLA_FLAGS_JAXLIBS = ('0.10.2',)


def xla_flag_name(flag: str) -> str:
  """'--name' of an XLA flag '--name=value'."""
  return flag.split('=', 1)[0]


def default_xla_flags(jaxlib_version: str | None = None) -> tuple[str, ...]:
  """`DEFAULT_XLA_FLAGS` under the jaxlib versions they were measured on
  (`XLA_FLAGS_JAXLIBS`; default: the installed jaxlib), else none."""
  if jaxlib_version is None:
    from jaxlib import version  # pylint: disable=g-import-not-at-top
    jaxlib_version = version.__version__
  return DEFAULT_XLA_FLAGS if jaxlib_version in XLA_FLAGS_JAXLIBS else ()


def missing_xla_flags(xla_flags: str,
                      jaxlib_version: str | None = None) -> tuple[str, ...]:
  """The `default_xla_flags` that `xla_flags` (an ``XLA_FLAGS`` value) does
  not name. A flag it names keeps the value given there
  (``--xla_cpu_experimental_ynn_fusion_type=+individual_convolution``
  restores XLA's own default, for example)."""
  given = {xla_flag_name(f) for f in xla_flags.split()}
  return tuple(f for f in default_xla_flags(jaxlib_version)
               if xla_flag_name(f) not in given)


def set_xla_flags(environ: dict[str, str] | None = None) -> tuple[str, ...]:
  """Appends `missing_xla_flags` to ``environ['XLA_FLAGS']`` (`os.environ`).

  Only before JAX has started a backend: XLA has read the variable by then,
  so a flag added later would not be in effect (and would mislead the
  processes this one starts into computing otherwise).

  Returns:
    The flags added (none when the variable names them all already, when
    the installed jaxlib is not one they were measured on, or when a
    backend had started).
  """
  environ = os.environ if environ is None else environ
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  started = getattr(xla_bridge, 'backends_are_initialized', lambda: False)
  if started():
    return ()
  given = environ.get('XLA_FLAGS', '')
  added = missing_xla_flags(given)
  if added:
    environ['XLA_FLAGS'] = ' '.join((given.strip(),) + added).strip()
  return added


class UsageError(ValueError):
  """A command line the script cannot run; the message is one line."""


def error(message: Any) -> int:
  """Prints one ``error:`` line on stderr; returns `EXIT_BAD_INPUT`."""
  text = ' '.join(str(message).split())
  print(f'error: {text}', file=sys.stderr, flush=True)
  return EXIT_BAD_INPUT


def without_traceback(text: str) -> str:
  """The last line of an error message that embeds a traceback."""
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  if not any(line.startswith('Traceback') for line in lines):
    return ' '.join(lines)
  last = lines[-1]
  return re.sub(r'^[\w.]*(Error|Exception): ', '', last)


def flag_error_message(err: Exception, argv: Sequence[str],
                       override_hint: str = '') -> str:
  """One line for an error raised while the flags are parsed.

  Args:
    err: absl's `flags.Error`, or ml_collections' AttributeError / KeyError
      for an unknown ``--config.*`` field.
    argv: the command line (to name the override that failed).
    override_hint: added to the message for a ``--config.*`` override given
      without ``--config``.
  """
  if isinstance(err, flags.Error):
    text = str(err)
    head = text.splitlines()[0] if text else ''
    if ': Error whilst parsing config file' in head:
      flag = head.split(': Error whilst parsing config file')[0]
      return f'{flag.removeprefix("flag ")}: {without_traceback(text)}'
    text = without_traceback(text).removeprefix('flag ')
    unknown = re.match(r"Unknown command line flag '(config\.[^']*)'", text)
    if unknown:
      hint = f' ({override_hint})' if override_hint else ''
      return (f'--{unknown.group(1)}: config overrides need --config=FILE'
              f'{hint}.')
    for pattern, expected in (("invalid literal for int", 'an integer'),
                              ('could not convert string to float',
                               'a number')):
      if pattern in text:
        return f'{text} (expected {expected})'
    return text
  # An unknown config field: ml_collections raises KeyError (wrapped in an
  # AttributeError) with a 'did you mean' suggestion inside the repr.
  inner = err
  while isinstance(inner, (AttributeError, KeyError)) and inner.args:
    if isinstance(inner.args[0], BaseException):
      inner = inner.args[0]
    else:
      break
  text = str(inner.args[0]) if inner.args else str(inner)
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  key = lines[0].strip('\'"') if lines else ''
  hint = re.search(r'Did you mean "([^"]+)"', text)
  overrides = [a.split('=', 1)[0] for a in argv if re.match(r'--\w+\.', a)]
  flag = next((a for a in overrides
               if key in a.split('=', 1)[0].split('.')[1:]), None)
  if flag is None or not key or ' ' in key:
    return f'config override: {" ".join(lines)}'
  message = f'{flag}: the config has no field {key!r}'
  if hint:
    message += f' (did you mean {hint.group(1)!r}?)'
  return message + '.'


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _config_file_flags(flag_values: flags.FlagValues) -> list[str]:
  return [name for name in flag_values
          if isinstance(flag_values[name].parser, ConfigFileFlagParser)]


def _check_tuple_overrides(name: str, argv: Sequence[str],
                           flag_values: flags.FlagValues) -> None:
  """A tuple of numbers overridden with text that is not numbers is an error.

  ml_collections reads what it cannot parse in a tuple override as a
  string (``--config.model.hidden_dims=(3,x)`` gives ``('(3,x)',)``); the
  config file's own value says what was expected.
  """
  given = [a.split('=', 1)[1] for a in argv if a.startswith(f'--{name}=')]
  overrides = config_flags.get_override_values(flag_values[name])
  if not given or not overrides:
    return
  pristine = ConfigFileFlagParser(name=name).parse(given[-1])
  for path, value in overrides.items():
    try:
      old = config_path.get_value(path, pristine)
    except (AttributeError, KeyError, IndexError, ValueError):
      continue
    if (isinstance(old, (tuple, list)) and old and
        all(_is_number(v) for v in old) and isinstance(value, (tuple, list))
        and not all(_is_number(v) for v in value)):
      raise UsageError(
          f'--{name}.{path}={tuple(value)!r}: expected a tuple of numbers, '
          f'e.g. --{name}.{path}="{tuple(old)}".')


def parse_command_line(argv: Sequence[str],
                       flag_values: flags.FlagValues = flags.FLAGS, *,
                       override_hint: str = '') -> list[str]:
  """Parses `argv` into `flag_values` and loads every config-file flag.

  Args:
    argv: the command line, the program name first.
    flag_values: where the flags are defined.
    override_hint: see `flag_error_message`.

  Returns:
    The arguments that are not flags (the program name first).

  Raises:
    UsageError: one line naming the flag or config field and what was
      expected (absl's, ml_collections' and the config file's own errors).
  """
  try:
    rest = flag_values(list(argv))
  except (flags.Error, AttributeError, KeyError) as e:
    raise UsageError(flag_error_message(e, argv, override_hint)) from e
  for name in _config_file_flags(flag_values):
    config = flag_values[name].value
    if config is not None and not isinstance(config,
                                             ml_collections.ConfigDict):
      # A config file that failed to load stands in for the config and
      # raises on first use.
      try:
        config.to_dict()
      except (OSError, ValueError, TypeError, AttributeError, KeyError) as e:
        given = [a for a in argv if a.startswith(f'--{name}=')]
        lines = [line.strip() for line in str(e).splitlines()
                 if line.strip()]
        raise UsageError(f'{given[-1] if given else "--" + name}: '
                         f'{without_traceback(lines[-1])}') from e
    if config is not None:
      _check_tuple_overrides(name, argv, flag_values)
  return rest


def _parse_or_exit(parse: Callable[[Sequence[str]], list[str]]
                   ) -> Callable[[Sequence[str]], list[str]]:
  def parser(argv: Sequence[str]) -> list[str]:
    try:
      return parse(argv)
    except UsageError as e:
      sys.exit(error(e))
  return parser


def run(main: Callable[[list[str]], int | None], *,
        parse: Callable[[Sequence[str]], list[str]] = parse_command_line
        ) -> NoReturn:
  """`absl.app.run(main)`: bad input is one ``error:`` line and status 2.

  The experiments' XLA options are set first (`set_xla_flags`).

  Args:
    main: the script's main; its return value is the exit status.
    parse: the flags parser (`parse_command_line` with `flags.FLAGS`).
  """

  def guarded(argv: list[str]) -> int | None:
    try:
      return main(argv)
    except (app.UsageError, UsageError, ConfigError, DataError) as e:
      return error(e)

  set_xla_flags()
  app.run(guarded, flags_parser=_parse_or_exit(parse))
  raise AssertionError('absl.app.run returned')  # it exits
