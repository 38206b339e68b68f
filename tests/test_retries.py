"""Retries in a gRPC interceptor and in a proxy, with real grpcio clients and servers on loopback."""

from __future__ import annotations

import random
from contextlib import closing

import grpc
import pytest

from meshlab.microservices.retries import ISTIO_DEFAULT_RETRIES, FlakyBackend, RetryingProxy, RetryInterceptor, RetryPolicy, call_many

CALLS, RATE, SEED = 120, 0.3, 4


def expected(policy: RetryPolicy) -> tuple[list[str], int]:
    """Statuses and backend attempts predicted from the backend's seeded draws, independently."""
    rng, statuses, attempts = random.Random(SEED), [], 0
    for _ in range(CALLS):
        for _ in range(1 + policy.retries):
            attempts += 1
            ok = rng.random() >= RATE
            if ok:
                break
        statuses.append("OK" if ok else "UNAVAILABLE")
    return statuses, attempts


def through_interceptor(policy: RetryPolicy | None) -> tuple[list[str], int]:
    with FlakyBackend(RATE, SEED) as backend:
        channel = grpc.insecure_channel(f"127.0.0.1:{backend.port}")
        if policy is not None:
            channel = grpc.intercept_channel(channel, RetryInterceptor(policy))
        with closing(channel):
            return call_many(channel, CALLS), backend.attempts


def test_the_interceptor_and_the_proxy_recover_exactly_the_same_calls():
    policy = RetryPolicy()
    library = through_interceptor(policy)
    with FlakyBackend(RATE, SEED) as backend, RetryingProxy(f"127.0.0.1:{backend.port}", policy) as proxy:
        with closing(grpc.insecure_channel(f"127.0.0.1:{proxy.port}")) as channel:
            mesh = call_many(channel, CALLS), backend.attempts
    assert library == mesh == expected(policy)
    assert library[0].count("OK") > through_interceptor(None)[0].count("OK"), "retries recover calls"


def test_a_client_without_the_library_gets_no_retries_but_the_proxy_retries_for_it():
    bare = through_interceptor(None)
    assert bare == expected(RetryPolicy(retries=0))
    with FlakyBackend(RATE, SEED) as backend, RetryingProxy(f"127.0.0.1:{backend.port}", RetryPolicy()) as proxy:
        with closing(grpc.insecure_channel(f"127.0.0.1:{proxy.port}")) as channel:  # a plain channel: nothing linked in
            assert (call_many(channel, CALLS), backend.attempts) == expected(RetryPolicy())


def test_changing_the_proxys_policy_changes_it_for_every_client_at_once():
    with FlakyBackend(RATE, SEED) as backend, RetryingProxy(f"127.0.0.1:{backend.port}", RetryPolicy(retries=4)) as proxy:
        with closing(grpc.insecure_channel(f"127.0.0.1:{proxy.port}")) as channel:
            first = call_many(channel, CALLS // 2)
            proxy.policy = RetryPolicy(retries=0)
            second = call_many(channel, CALLS // 2)
    assert first.count("UNAVAILABLE") < second.count("UNAVAILABLE")
    assert second.count("UNAVAILABLE") > 0 and first.count("UNAVAILABLE") <= 1


def test_a_status_outside_retry_on_is_not_retried():
    policy = RetryPolicy(retry_on=frozenset({grpc.StatusCode.DEADLINE_EXCEEDED}))
    assert through_interceptor(policy) == expected(RetryPolicy(retries=0))


def test_istios_default_is_two_retries():
    assert RetryPolicy().retries == ISTIO_DEFAULT_RETRIES == 2


@pytest.mark.parametrize(("make", "message"), [(lambda: RetryPolicy(retries=-1), "retries must be 0 or more, got -1"),
                                                (lambda: FlakyBackend(1.0), r"failure_rate must be within \[0, 1\), got 1.0")])
def test_bad_input_is_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()
