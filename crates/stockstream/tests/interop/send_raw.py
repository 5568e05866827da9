"""Sends each line of a file, as is, as one message with no key, or with KEY
when given (kafka-python).
Usage: send_raw.py BROKERS TOPIC FILE [KEY]"""
import sys
from kafka import KafkaProducer

brokers, topic, path = sys.argv[1:4]
key = sys.argv[4].encode() if len(sys.argv) > 4 else None
producer = KafkaProducer(bootstrap_servers=[brokers])
lines = open(path, "rb").read().split(b"\n")
lines = [l for l in lines if l != b""]
for line in lines:
    producer.send(topic, key=key, value=line)
producer.flush()
print(len(lines))
