"""Harness that runs a feed's script inside the sandbox and reports how it ended.

Copied into the work dir as _tributary_boot.py and started as the sandbox's main program. It
runs script.py as __main__ (so Peak scripts run unmodified), then writes out/result.json with
the status, the record count and, on failure, the error and its line in the user's script.
"""

import builtins
import json
import os
import sys
import traceback

WORK_DIR = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(WORK_DIR, "script.py")
sys.path.insert(0, WORK_DIR)
os.chdir(WORK_DIR)

from lib import _inspect, _runtime  # noqa: E402  (needs the work dir on sys.path first)

# A process the script forks with os.fork() returns into this harness too. Only the harness's
# own process may report: a child that wrote result.json (racing its siblings) or flushed its
# copy of the spool's buffer (duplicating records) would corrupt the outcome.
HARNESS_PID = os.getpid()


def _leave_if_forked(code: int) -> None:
    if os.getpid() != HARNESS_PID:
        os._exit(code)


def _line_in_script(tb) -> int | None:
    """The innermost frame of the traceback that belongs to the user's script."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == SCRIPT:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _report_failure(exc: BaseException) -> dict:
    if isinstance(exc, SyntaxError) and exc.filename == SCRIPT:
        line = exc.lineno
        traceback.print_exception(type(exc), exc, None)
    else:
        line = _line_in_script(exc.__traceback__)
        # Skip the harness's own frame: the user should see their script only.
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
    message = _runtime.mask_text(f"{type(exc).__name__}: {exc}")
    if line is not None:
        message += f" (script.py, line {line})"
    return {"status": "failed", "error": message, "error_type": type(exc).__name__, "error_line": line}


def main() -> int:
    _runtime.install_masking()
    _inspect.install()  # out/requests.jsonl: the requests the script makes
    result = {"status": "succeeded"}
    try:
        with open(SCRIPT, encoding="utf-8") as handle:
            code = compile(handle.read(), SCRIPT, "exec")
        namespace = {"__name__": "__main__", "__file__": SCRIPT, "__builtins__": builtins}
        exec(code, namespace)
    except _runtime.PreviewComplete:
        pass  # a test collected its records: a success, not an error
    except SystemExit as exc:
        if exc.code not in (None, 0):
            result = {"status": "failed", "error": f"the script exited with status {exc.code}",
                      "error_type": "SystemExit", "error_line": _line_in_script(exc.__traceback__)}
    except BaseException as exc:  # noqa: BLE001 - everything the script raises is reported
        _leave_if_forked(1)
        result = _report_failure(exc)
    finally:
        _leave_if_forked(0 if result["status"] == "succeeded" else 1)
        _runtime.outputStream.close()
        _inspect.write_summary()
    result["records"] = _runtime.outputStream.count
    sys.stdout.flush()
    sys.stderr.flush()
    result_path = os.path.join(_runtime.OUT_DIR, "result.json")
    with open(result_path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    os.replace(result_path + ".tmp", result_path)  # a kill mid-write leaves no half a result
    return 0 if result["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
