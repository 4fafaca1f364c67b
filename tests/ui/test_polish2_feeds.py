"""The Feeds table from 1024 px up: names wrap at their separators rather than mid-word, the
last run's status sits above its time, Run now and the ⋮ menu share a row that wraps rather
than truncates; the records column says it is the last run's count; Delete closes the ⋮
popover behind its dialog. And the test preview's JSON has a fixed height."""

from core.bootstrap import start_run
from core.feeds import FeedSpec, create_feed
from tests.ui.conftest import texts, wait_for_test
from tests.ui.test_feeds_page import row_buttons

THREE = "from lib import outputStream\nfor i in range(3):\n    outputStream.write({'i': i})\n"


def test_headers_say_last_run_records_and_long_names_break_at_separators(app):
    create_feed(FeedSpec(name="orders_daily_export", script=THREE))
    start_run("orders_daily_export", wait=True)
    at = app("feeds")
    captions = [c.value for c in at.caption]
    assert "Last run records" in captions and "Records" not in captions
    assert "Last run (UTC)" in captions
    [name] = [m.value for m in at.markdown if m.value.startswith("**orders")]
    assert name == "**orders_<wbr>daily_<wbr>export**"  # wraps after an underscore, never inside a word
    assert "3" in [m.value for m in at.markdown]
    buttons = row_buttons(at, "orders_daily_export")
    assert buttons["Run now"].label == "Run now"


def test_delete_closes_the_popover_and_opens_the_dialog_outside_it(app):
    create_feed(FeedSpec(name="orders", script=THREE))
    at = app("feeds")
    [before] = [p.proto.id for p in popovers(at)]
    row_buttons(at, "orders")["Delete"].click().run()
    [after] = [p.proto.id for p in popovers(at)]
    assert after != before  # a new popover, drawn closed: the one the user had open is gone
    assert "Delete the feed **orders** and its run history?" in texts(at)


def test_the_json_preview_has_a_fixed_height(app):
    create_feed(FeedSpec(name="orders", script=THREE))
    at = app("feeds")
    row_buttons(at, "orders")["Test"].click().run()
    wait_for_test(at, "feeds-page-test")
    assert at.session_state["feeds:more-generation"] == 1  # Test closed the popover too
    assert 360 in json_heights(at._tree, "["), "the records' JSON is not in a box of fixed height"


def popovers(at) -> list:
    """The page's popover blocks (AppTest has no accessor of its own for them)."""
    found = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "WhichOneof") and "popover" in type(proto).DESCRIPTOR.fields_by_name \
                and proto.WhichOneof("type") == "popover":
            found.append(node)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


def json_heights(node, starts: str, heights=()) -> list[int]:
    """The fixed heights (px) of the blocks around each st.json whose text starts so."""
    found = []
    proto = getattr(node, "proto", None)
    height = getattr(getattr(proto, "height_config", None), "pixel_height", 0) if hasattr(proto, "height_config") else 0
    heights = (*heights, height) if height else heights
    if getattr(node, "type", None) == "json" and str(node.value).startswith(starts):
        found += list(heights)
    for child in getattr(node, "children", {}).values():
        found += json_heights(child, starts, heights)
    return found
