# conftest.py: replaces the suite's own conftest.py (tools/server/tests) in
# the copy tests/peer/run.py makes. The suite's downloads every preset's model
# from Hugging Face before the first test (ServerPreset.load_all); here
# nothing is downloaded, and two kinds of test are reported as not runnable,
# never run or faked:
#   - tests that use the `openai` Python package where it is not installed
#     (it is not a Debian package): a stand-in module lets the rest of their
#     file import, and calling it fails loudly;
#   - tests whose server could not start because its model is not available
#     offline (tests/peer/launch.sh exits 3 and says which).
# Skip reasons that start with NOT_RUNNABLE are counted apart by run.py.
import inspect
import os
import sys
import types

import pytest

NOT_RUNNABLE = "not runnable:"
EXIT_NO_MODEL = 3

try:
    import openai  # noqa: F401
    HAVE_OPENAI = True
except ImportError:
    HAVE_OPENAI = False
    stub = types.ModuleType("openai")

    class OpenAI:  # noqa: D401 - a stand-in that refuses to work
        def __init__(self, *args, **kwargs):
            raise RuntimeError("the openai Python package is not installed; this test should have been skipped")

    stub.OpenAI = OpenAI
    sys.modules["openai"] = stub

# The suite's utils.py imports wget (python3-wget) for download_file, which
# nothing here calls: nothing is downloaded offline. Where it is missing, a
# stand-in that refuses keeps the requirement to pytest and requests.
try:
    import wget  # noqa: F401
except ImportError:
    wget_stub = types.ModuleType("wget")

    def _no_download(url, *args, **kwargs):
        raise RuntimeError(f"no downloads here (offline): {url}")

    wget_stub.download = _no_download
    sys.modules["wget"] = wget_stub

from utils import ServerProcess, server_instances  # noqa: E402  (the suite's utils.py)


def pytest_collection_modifyitems(config, items):
    if HAVE_OPENAI:
        return
    mark = pytest.mark.skip(reason=f"{NOT_RUNNABLE} uses the openai Python package, which is not installed")
    for item in items:
        fn = getattr(item, "function", None)
        try:
            src = inspect.getsource(fn) if fn else ""
        except (OSError, TypeError):
            src = ""
        if "OpenAI(" in src:
            item.add_marker(mark)


_start = ServerProcess.start


def _start_or_not_runnable(self, *args, **kwargs):
    """The suite's start; a launch that launch.sh ended says why (the
    file it leaves in $AL_PEER_WORK): a model not available offline makes
    the test not runnable, anything else fails it with the reason."""
    note = os.path.join(os.environ.get("AL_PEER_WORK", "."), "launch-error")
    if os.path.exists(note):
        os.unlink(note)
    try:
        return _start(self, *args, **kwargs)
    except RuntimeError as e:
        why = ""
        if os.path.exists(note):
            with open(note) as fh:
                why = fh.read().strip()
        if self.process is not None and self.process.returncode == EXIT_NO_MODEL:
            server_instances.discard(self)
            pytest.skip(f"{NOT_RUNNABLE} {why or 'its model is not available offline'}")
        if why:
            raise RuntimeError(f"{e}: {why}") from None
        raise


ServerProcess.start = _start_or_not_runnable


# The suite's own: stop every server after each test.
@pytest.fixture(autouse=True)
def stop_server_after_each_test():
    yield
    for server in set(server_instances):
        server.stop()
