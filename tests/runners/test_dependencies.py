"""Feed dependencies install into cached environments (needs the package registry)."""

from core.preview import PreviewRequest, preview_script

USES_TINYDB = "import tinydb\nfrom lib import outputStream\noutputStream.write({'version': tinydb.__version__})\n"


def test_dependencies_install_once_and_are_reused(runner_name):
    first = preview_script(PreviewRequest(script=USES_TINYDB, dependencies=["tinydb==4.8.0"]))
    assert first.ok, "\n".join(first.logs)
    assert first.records == [{"version": "4.8.0"}]
    assert any("building environment" in line for line in first.logs)

    second = preview_script(PreviewRequest(script=USES_TINYDB, dependencies=["tinydb==4.8.0"]))
    assert second.ok
    assert any("using cached environment" in line for line in second.logs)
    assert not any("building environment" in line for line in second.logs)


def test_a_bad_package_fails_with_the_installers_message(runner_name):
    result = preview_script(PreviewRequest(script="print(1)", dependencies=["tributary-no-such-package-xyz==1.0"]))
    assert not result.ok
    assert "installing the dependencies failed" in result.error
    assert "tributary-no-such-package-xyz" in result.error
