"""The fault suite: real processes, real signals, hostile inputs. Each test is a fault that was
reproduced once; it stays here so that it stays fixed. Helpers of the e2e layer are shared.
Each module marks itself: `pytestmark = pytest.mark.faults`."""

from __future__ import annotations

from tests.e2e.conftest import cli, events, of_type, wait_for, write_jsonl  # noqa: F401
