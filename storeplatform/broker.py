"""kombu's Redis transport with one fix, so a busy worker survives a broker
restart.

With kombu 5.7, when Redis goes away while a worker runs a task, the worker
exits: ``Unrecoverable error: AttributeError("'NoneType' object has no
attribute 'hostname'")`` in ``restore_unacked`` (the family of
https://github.com/celery/kombu/issues/970 and
https://github.com/celery/kombu/issues/582). What happens:

1. Celery's consumer sees the connection error and calls
   ``Connection.collect()``, which closes the default channel.
2. ``Channel.close()`` first drains a pending BRPOP (added by
   https://github.com/celery/kombu/pull/1733). On a connection Redis dropped,
   that read raises a connection error, which ``collect()`` ignores, and the
   rest of ``close()`` never runs: the channel stays open, holding the
   unacknowledged task. ``collect()`` then detaches the transport
   (``transport.client = None``).
3. Celery closes the connection once more. This time the channel does close,
   tries to restore its unacknowledged message, needs connection parameters
   from the detached transport, and raises AttributeError, which nothing
   catches: the worker shuts down after its running task.

The fix: when draining the BRPOP fails, finish closing the channel right
away, while the transport is still attached. The unacknowledged message
cannot be restored while Redis is down; it stays in Redis' unacked index,
where the task's acknowledgement (after the reconnect) removes it, or the
visibility timeout restores it.

Used by pointing Celery at this transport (``CELERY_BROKER_TRANSPORT`` in
settings) for ``redis://`` and ``rediss://`` broker URLs. Tested by
``test_a_busy_worker_survives_a_redis_restart_and_finishes_its_store``.
"""

from kombu.transport import redis


class Channel(redis.Channel):
    def close(self):
        try:
            super().close()
        except self.connection_errors:
            if self.closed:
                raise
            # The BRPOP drain failed before the channel closed; close it now
            # (the drain is not retried: _brpop_read cleared _in_poll).
            super().close()
            raise


class Transport(redis.Transport):
    Channel = Channel
