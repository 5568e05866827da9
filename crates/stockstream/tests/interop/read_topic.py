"""Reads COUNT messages of a topic from the beginning with kafka-python, an
independent client, and prints one JSON object per message: partition, offset,
key, value (text) and headers.
Usage: read_topic.py BROKERS TOPIC COUNT"""
import json, sys, time
from kafka import KafkaConsumer

brokers, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
consumer = KafkaConsumer(topic, bootstrap_servers=[brokers], auto_offset_reset="earliest",
                         enable_auto_commit=False, group_id=None, consumer_timeout_ms=20000)
seen = 0
deadline = time.time() + 120
for m in consumer:
    print(json.dumps({
        "partition": m.partition, "offset": m.offset,
        "key": m.key.decode("utf-8", "replace") if m.key is not None else None,
        "value": m.value.decode("utf-8", "replace"),
        "headers": {k: v.decode("utf-8", "replace") for k, v in (m.headers or [])},
    }))
    seen += 1
    if seen >= count or time.time() > deadline:
        break
consumer.close()
if seen < count:
    sys.exit(f"read only {seen} of {count} messages from {topic}")
