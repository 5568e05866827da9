"""Sends a CSV's rows to a topic exactly as the original project's producer did:
kafka-python, no key, each row a dict (pandas-style: prices as floats, missing
values as NaN) serialised with json.dumps.
Usage: original_producer.py BROKERS TOPIC CSV"""
import csv, json, sys
from kafka import KafkaProducer

brokers, topic, path = sys.argv[1:4]
producer = KafkaProducer(bootstrap_servers=[brokers], value_serializer=lambda x: json.dumps(x).encode("utf-8"))
sent = 0
with open(path, newline="") as f:
    for row in csv.DictReader(f):
        record = {}
        for k, v in row.items():
            if k in ("Open", "High", "Low", "Close", "Volume"):
                record[k] = float(v) if v != "" else float("nan")
            else:
                record[k] = v
        producer.send(topic, value=record)
        sent += 1
producer.flush()
print(sent)
