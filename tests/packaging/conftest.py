"""The packaging tests drive headless Chromium with sync Playwright, as the UI tests do: reuse
their browser fixture and their opt-outs of pytest-jupyter's per-test event loop."""

from tests.ui.conftest import browser, jp_asyncio_loop, jp_server_cleanup

__all__ = ["browser", "jp_asyncio_loop", "jp_server_cleanup"]
