"""Tab adds a tag, like Enter, in a tags field (st.multiselect with accept_new_options).

Streamlit's multiselect takes a new option on Enter only; people typing package names expect
Tab to work too. This component has no UI of its own: its script listens for Tab in the
multiselect with the given label and turns it into Enter. Should Streamlit's markup change,
Tab falls back to moving the focus and Enter still adds the tag.
"""

from __future__ import annotations

import streamlit as st

_JS = """
export default function ({ parentElement, data }) {
  const doc = parentElement.ownerDocument;
  function onKeyDown(event) {
    if (event.key !== "Tab" || event.shiftKey || event.isComposing) return;
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.value.trim()) return;
    const widget = input.closest('[data-testid="stMultiSelect"]');
    const label = widget && widget.querySelector('[data-testid="stWidgetLabel"]');
    if (!label || label.innerText.trim() !== data.label) return;
    event.preventDefault();
    event.stopPropagation();
    input.dispatchEvent(new KeyboardEvent("keydown", {
      key: "Enter", code: "Enter", keyCode: 13, which: 13, bubbles: true, cancelable: true,
    }));
  }
  doc.addEventListener("keydown", onKeyDown, true);
  return () => doc.removeEventListener("keydown", onKeyDown, true);
}
"""

_component = st.components.v2.component("tributary_tab_adds_tags", js=_JS)


def tab_adds_tags(label: str, key: str) -> None:
    """Make Tab add the typed tag in the multiselect labelled `label` on this page."""
    _component(data={"label": label}, key=key, height=0)
