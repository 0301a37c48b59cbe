"""Stream inference: a consumer on the cluster scores a message stream with a version's Bento.

The broker sits behind one small interface (:class:`~jupyter_deploy.stream.broker.Broker`);
Redis Streams is the first implementation, Kafka and NATS are meant to follow.
"""
