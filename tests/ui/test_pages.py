"""Every page opens (AppTest only switches to pages that st.navigation registered), on an
empty Tributary and on one with a connection, a feed and runs."""

import pytest

from core.connections import ConnectionInput, create_connection
from core.feeds import FeedSpec, create_feed
from core.bootstrap import start_run
from tests.ui.conftest import PAGES, new_app

TITLES = {"feeds": "Feeds", "new": "New feed", "edit": "Edit feed", "connections": "Connections",
          "runs": "Runs", "data": "Data", "settings": "Settings"}


def with_data():
    create_connection("Shop", "basic", ConnectionInput(username="ann", password="pw-123456"))
    create_feed(FeedSpec(name="orders", connection="Shop", tags=["sales"],
                         script="from lib import outputStream\noutputStream.write({'a': 1})\n"))
    start_run("orders", wait=True)


@pytest.mark.parametrize("filled", [False, True], ids=["empty", "with-data"])
@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_opens(tributary, page, filled):
    if filled:
        with_data()
    at = new_app(page)
    assert not at.exception
    assert [t.value for t in at.title][:1] == [TITLES[page]]
    assert not at.error
    assert "pw-123456" not in str(at.main)  # a secret never reaches a page

