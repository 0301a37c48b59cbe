"""One error hierarchy that keeps its class and message across process boundaries."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from jupyter_deploy import errors


def _classes() -> list[type[errors.JupyterDeployError]]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass)
            if issubclass(c, errors.JupyterDeployError)]  # fmt: skip


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_every_error_survives_the_wire(cls: type[errors.JupyterDeployError]) -> None:
    original = cls.__new__(cls)
    Exception.__init__(original, "what went wrong; what to do")
    original.status = cls.status
    rebuilt = errors.from_wire(errors.to_wire(original))
    assert type(rebuilt) is cls
    assert str(rebuilt) == "what went wrong; what to do" and rebuilt.status == cls.status


def test_an_unknown_error_keeps_its_name() -> None:
    rebuilt = errors.from_wire(("KeyError", "'x'", None))
    assert type(rebuilt) is errors.JupyterDeployError
    assert str(rebuilt) == "KeyError: 'x'" and rebuilt.status == 500


@pytest.mark.cluster
def test_an_actor_error_reaches_the_driver_as_itself(cluster: Any) -> None:
    import ray

    from jupyter_deploy import _ray

    class Raiser:  # defined here so Ray ships it by value (workers cannot import tests)
        def fail(self) -> None:
            raise errors.RollbackError("'churn' has no version before v1 to roll back to.")

    actor = ray.remote(Raiser).remote()
    with pytest.raises(errors.RollbackError) as err:
        _ray.call(actor.fail)
    assert str(err.value) == "'churn' has no version before v1 to roll back to."
    assert err.value.status == 409
    ray.kill(actor)
