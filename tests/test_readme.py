"""README.md's Python example runs as written."""

import re

from tests import helpers


def test_readme_python_blocks_run():
  text = (helpers.REPO_ROOT / 'README.md').read_text()
  blocks = re.findall(r'```python\n(.*?)```', text, flags=re.S)
  assert blocks, 'README.md has no python example'
  for block in blocks:
    namespace = {}
    exec(compile(block, 'README.md', 'exec'), namespace)  # pylint: disable=exec-used
  assert namespace['latent'].shape == (4, 7, 7)
  assert namespace['bpd'].shape == (4,)
