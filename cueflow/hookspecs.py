"""Every hook a cueflow plugin can implement; each docstring is that hook's contract.

A plugin is a module (or any object) with functions named after these hooks, marked with
:data:`cueflow.hookimpl`, and made known either through an entry point in the ``cueflow`` group
(``[project.entry-points.cueflow] name = "module"``) or by passing it to
``Engine(settings, plugins=[...])``. The built-in stores and transports under ``plugins/`` use
the same hooks; they are loaded from :data:`cueflow.plugins.DEFAULT_PLUGINS`. Names starting
with ``cueflow_`` are reserved for hooks: a plugin function with such a name that matches no
hook here stops start-up with a :class:`cueflow.errors.PluginError` naming the plugin, marked
or not.

All hooks are plain (synchronous) functions, called once per engine while ``Engine(...)`` is
constructed, in plugin registration order (built-ins first, then entry points, then
``plugins=[...]``). Implementations may accept any subset of a hook's parameters, by name.
Every hook hands the plugin a ``register(...)`` callback, so one package can offer several
stores or transports.
:mod:`cueflow.plugins` is the only caller; the rest of cueflow asks its typed facade.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from cueflow.config import Settings
    from cueflow.store import Store
    from cueflow.transport import Notifier, Transport

hookspec = pluggy.HookspecMarker("cueflow")

StoreFactory = Callable[[str, "Settings"], "Store"]
"""Builds a store from a database URL and the settings; must not connect yet (``open`` does)."""


@hookspec
def cueflow_register_stores(register: Callable[[str, StoreFactory], None]) -> None:
    """Offer storage backends, one per database URL scheme.

    When: once per engine, while ``Engine(...)`` is constructed, before any store is built or
    opened. Synchronous; do no I/O here.

    :param register: ``register(scheme, factory)``; call it once per URL scheme the plugin
        serves. ``scheme`` is what a database URL has before ``://``, lower case and without a
        ``+driver`` suffix (``"sqlite"``, ``"postgresql"``); the engine strips ``+driver`` from
        the URL's scheme before it looks the factory up. ``factory(url, settings)`` receives
        the full database URL and the engine's :class:`cueflow.config.Settings` and returns a
        :class:`cueflow.store.Store`. It is called once, only for the scheme of
        ``settings.database_url``, and must not connect: the engine calls ``await
        store.open()`` (connect and migrate), runs every unit of work through ``store.tx()``
        and ends with ``await store.close()``. ``register`` raises
        :class:`cueflow.errors.PluginError` for a scheme another plugin registered already or a
        malformed scheme, and that stops start-up.
    :return: ignored.

    A store must pass :class:`cueflow.testing.StoreConformance`.
    """


@hookspec
def cueflow_register_transports(register: Callable[[Transport], None], settings: Settings) -> None:
    """Offer delivery transports.

    When: once per engine, while ``Engine(...)`` is constructed, before the store is opened.
    Synchronous; build the transport objects here and do I/O in their ``start``.

    :param register: ``register(transport)``; call it once per transport. ``transport``
        satisfies :class:`cueflow.transport.Transport`: a ``name`` (the value of a cue's
        ``transport`` field, 1 to 64 characters), ``pull`` and the coroutine methods
        ``validate_cue``, ``start`` and ``stop``; a push transport (``pull = False``) also has
        ``lease_seconds`` (a positive number) and the coroutine method ``deliver`` of
        :class:`cueflow.transport.PushTransport`, and may declare the optional capabilities
        of :mod:`cueflow.transport` (``ConcurrencyBound``, ``TaskRouter``, ``HandlerHost``,
        ``CallbackSender``) by satisfying their protocols. ``register`` raises
        :class:`cueflow.errors.PluginError` for a name another plugin registered already or an
        object lacking any of these, and that stops start-up.
    :param settings: the engine's :class:`cueflow.config.Settings` (read-only), for transports
        that take configuration from it. Settings of a plugin's own belong in its own
        environment variables.
    :return: ignored.

    The engine calls ``await transport.start(services)`` (its store, clock and settings:
    :class:`cueflow.transport.TransportServices`) when it starts, ``await
    transport.stop()`` when it stops or closes, ``await transport.validate_cue(...)`` before a
    cue of this transport is stored, and for a push transport ``await
    transport.deliver(delivery)`` for each attempt. A transport must pass
    :class:`cueflow.testing.TransportConformance` (push transports
    :class:`cueflow.testing.PushTransportConformance`).
    """


@hookspec
def cueflow_register_notifiers(
    register: Callable[[Notifier], None],
    transports: Mapping[str, Transport],
    settings: Settings,
) -> None:
    """Offer the sender of failure notices (the ``cue.failed`` alerts of
    :mod:`cueflow.alerts`, sent to ``on_failure.webhook`` or an account's alert webhook).

    When: once per engine, while ``Engine(...)`` is constructed, after
    ``cueflow_register_transports`` (so ``transports`` is complete). Synchronous; do no I/O.

    :param register: ``register(notifier)``; call it at most once. ``notifier`` satisfies
        :class:`cueflow.transport.Notifier`: the coroutine methods ``notify(notice)`` (send one
        :class:`cueflow.transport.Notice` once, answering with a
        :class:`cueflow.transport.DeliveryResult`) and ``check_url(url)`` (raise
        ``ValueError`` with the reason for a URL notices may not go to; the REST API answers
        400 ``invalid_alert_webhook_url``). An engine has at most one notifier: ``register``
        raises :class:`cueflow.errors.PluginError` naming both plugins when a second one is
        registered, or for an object lacking either method, and that stops start-up.
    :param transports: the registered transports by name (read-only), so a transport plugin
        can register the very transport object that already holds a client.
    :param settings: the engine's :class:`cueflow.config.Settings` (read-only).
    :return: ignored.

    Without a notifier, failure notices are logged and dropped, and alert webhook URLs are
    checked for scheme and host only. The built-in ``webhook`` plugin registers its transport.
    """


def all_hooks() -> dict[str, Any]:
    """Every hook specification of this module, by name."""
    return {name: obj for name, obj in globals().items() if name.startswith("cueflow_")}
