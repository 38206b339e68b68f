"""Retries in a library or in a proxy: one policy, carried by every client or by one proxy.

Before sidecars, resilience was a library each service linked: Netflix OSS (Hystrix, Ribbon,
Eureka) under Spring Cloud on the JVM, interceptors around gRPC's stubs elsewhere. It worked, for
the services written in the library's language, at the library's version, by teams who wired it
in. A mesh moves the same logic into a proxy beside the app, configured from one place. Here both
run for real on loopback with grpcio: the same ``RetryPolicy`` object decides in both places, so
what differs is only *where* it runs, which is the point.

    RetryPolicy       retries on which gRPC status codes; Istio's default is 2 on UNAVAILABLE/CANCELLED
    FlakyBackend      a gRPC server that fails a seeded share of the attempts it receives
    RetryInterceptor  the library way: a grpc client interceptor every client must carry
    RetryingProxy     the mesh way: a gRPC proxy that forwards any method and retries for every client
    call_many         sequential calls through a channel, each call's final status
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc

REVIEWS_METHOD = "/meshlab.Reviews/Get"

#: Istio's default retry policy, applied to every HTTP route without one of its own: 2 retries on
#: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes" (Istio
#: pilot/pkg/networking/core/route/retry/retry.go, ``defaultPolicy``; for gRPC, Envoy's
#: "unavailable" and "cancelled" are the gRPC status codes of those names).
ISTIO_DEFAULT_RETRIES = 2
ISTIO_DEFAULT_RETRY_ON = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``retries`` more attempts after the first, while the status is in ``retry_on``
    (Istio's HTTPRetry counts the same way: ``attempts`` are retries, not tries)."""

    retries: int = ISTIO_DEFAULT_RETRIES
    retry_on: frozenset[grpc.StatusCode] = ISTIO_DEFAULT_RETRY_ON

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, got {self.retries}")

    def attempt(self, once: Callable[[], object], status_of: Callable[[object], grpc.StatusCode]) -> object:
        """Call ``once`` until its result's status is not retriable or the retries are spent."""
        result = once()
        for _ in range(self.retries):
            if status_of(result) not in self.retry_on:
                break
            result = once()
        return result


def _status(result: object) -> grpc.StatusCode:
    """Status of a finished call: an RpcError's code, or OK for a response."""
    return result.code() if isinstance(result, grpc.RpcError) else grpc.StatusCode.OK


class _LoopbackServer:
    """A gRPC server on a free loopback port: ``start`` serves ``_handlers()``, ``stop`` ends it."""

    port: int = 0
    _server: grpc.Server | None = None

    def _handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        raise NotImplementedError

    def start(self):
        self._server = grpc.server(ThreadPoolExecutor(max_workers=2))
        self._server.add_generic_rpc_handlers(self._handlers())
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)

    def __enter__(self):
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()


@dataclass
class FlakyBackend(_LoopbackServer):
    """A gRPC server whose every attempt fails with UNAVAILABLE with probability ``failure_rate``,
    drawn from ``seed``: the same sequence of attempts meets the same failures."""

    failure_rate: float
    seed: int = 0
    attempts: int = field(default=0, init=False)
    port: int = field(default=0, init=False)
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.failure_rate < 1.0:
            raise ValueError(f"failure_rate must be within [0, 1), got {self.failure_rate}")
        self._rng = random.Random(self.seed)

    def _get(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self._lock:
            self.attempts += 1
            fails = self._rng.random() < self.failure_rate
        if fails:
            context.abort(grpc.StatusCode.UNAVAILABLE, "reviews: overloaded, try again")
        return b"reviews: 5 stars"

    def _handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        return (grpc.method_handlers_generic_handler("meshlab.Reviews", {"Get": grpc.unary_unary_rpc_method_handler(self._get)}),)


class RetryInterceptor(grpc.UnaryUnaryClientInterceptor):
    """The library way: wraps a client's channel; every client, in every language, needs its own."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def intercept_unary_unary(self, continuation, client_call_details, request):
        # A failed continuation returns (it does not raise) a call whose code() is the error.
        return self.policy.attempt(lambda: continuation(client_call_details, request), lambda call: call.code())


class RetryingProxy(_LoopbackServer):
    """The mesh way: a gRPC server that forwards every unary method, as raw bytes, to ``upstream``
    and retries by its ``policy``. Clients need nothing; changing the policy changes it for all."""

    def __init__(self, upstream: str, policy: RetryPolicy) -> None:
        self.upstream, self.policy = upstream, policy
        self._channel = grpc.insecure_channel(upstream)
        self._handlers_by_method: dict[str, grpc.RpcMethodHandler] = {}

    def _forward(self, method: str) -> grpc.RpcMethodHandler:
        """The forwarding handler for ``method``, made once (gRPC asks for it on every call)."""
        if method not in self._handlers_by_method:
            self._handlers_by_method[method] = self._new_handler(method)
        return self._handlers_by_method[method]

    def _new_handler(self, method: str) -> grpc.RpcMethodHandler:
        stub = self._channel.unary_unary(method)

        def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
            def once():
                try:
                    return stub(request, timeout=context.time_remaining())
                except grpc.RpcError as error:
                    return error

            result = self.policy.attempt(once, _status)
            if isinstance(result, grpc.RpcError):
                context.abort(result.code(), result.details())
            return result

        return grpc.unary_unary_rpc_method_handler(forward)

    def _handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        proxy = self

        class AnyMethod(grpc.GenericRpcHandler):
            def service(self, handler_call_details):
                return proxy._forward(handler_call_details.method)

        return (AnyMethod(),)

    def stop(self) -> None:
        super().stop()
        self._channel.close()


def call_many(channel: grpc.Channel, count: int, timeout_s: float = 5.0) -> list[str]:
    """``count`` sequential calls of REVIEWS_METHOD; each call's final status name ("OK", "UNAVAILABLE")."""
    stub = channel.unary_unary(REVIEWS_METHOD)
    statuses = []
    for _ in range(count):
        try:
            stub(b"product 0", timeout=timeout_s)
            statuses.append("OK")
        except grpc.RpcError as error:
            statuses.append(error.code().name)
    return statuses
