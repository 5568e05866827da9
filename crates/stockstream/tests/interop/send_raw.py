"""Sends each line of a file, as is, as one message with no key (kafka-python).
Usage: send_raw.py BROKERS TOPIC FILE"""
import sys
from kafka import KafkaProducer

brokers, topic, path = sys.argv[1:4]
producer = KafkaProducer(bootstrap_servers=[brokers])
lines = open(path, "rb").read().split(b"\n")
lines = [l for l in lines if l != b""]
for line in lines:
    producer.send(topic, value=line)
producer.flush()
print(len(lines))
