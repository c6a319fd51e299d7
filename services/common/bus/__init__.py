"""The message bus kernel.

::

    envelope     CloudEvents 1.0 structured envelope, routing keys, event names
    transport    the Transport interface every backend implements
      ├── inprocess   one process, asyncio queues, topic routing (embedded mode)
      └── amqp        RabbitMQ through aio-pika, publisher confirms, durable queues
    outbox       events written in the state change's transaction; relay publishes
    consumer     inbox (once-only effect), retries with back-off, dead letters
"""
