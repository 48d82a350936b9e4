"""RabbitMQ on 127.0.0.1:5672 for the AMQP tests (fixtures; see tests/services/__init__.py)."""
