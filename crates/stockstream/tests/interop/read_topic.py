"""Reads a topic from the beginning with kafka-python, an independent client, and
prints one JSON object per message: partition, offset, key, value (text) and
headers. COUNT is how many messages to expect, or `all` for every message up to
the topic's end as it is when the script starts.
Usage: read_topic.py BROKERS TOPIC COUNT|all"""
import json, sys, time
from kafka import KafkaConsumer, TopicPartition

brokers, topic, count = sys.argv[1], sys.argv[2], sys.argv[3]
consumer = KafkaConsumer(bootstrap_servers=[brokers], auto_offset_reset="earliest",
                         enable_auto_commit=False, group_id=None, consumer_timeout_ms=20000)
partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
consumer.assign(partitions)
consumer.seek_to_beginning()
if count == "all":
    ends = consumer.end_offsets(partitions)
    count = sum(ends[p] - consumer.beginning_offsets([p])[p] for p in partitions)
else:
    count = int(count)
seen = 0
deadline = time.time() + 120
while seen < count and time.time() < deadline:
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
