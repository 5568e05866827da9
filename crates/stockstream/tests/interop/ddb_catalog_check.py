"""Compares a table's catalog with its bars, both read with boto3: per company,
one JSON line with the catalog's First, Last, Close and Bars and the same
figures counted over a scan of the bars. Usage: ddb_catalog_check.py ENDPOINT TABLE"""
import json, sys
import boto3

endpoint, table = sys.argv[1], sys.argv[2]
client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
stored = {}
for page in client.get_paginator("scan").paginate(TableName=table):
    for item in page["Items"]:
        company, date, close = item["Company Name"]["S"], item["Date"]["S"], item["Close"]["N"]
        s = stored.setdefault(company, {"first": date, "last": date, "close": close, "bars": 0})
        s["bars"] += 1
        s["first"] = min(s["first"], date)
        if date >= s["last"]:
            s["last"], s["close"] = date, close
catalog = {}
query = dict(TableName=table + "Catalog", KeyConditionExpression="#k = :k",
             ExpressionAttributeNames={"#k": "Catalog"}, ExpressionAttributeValues={":k": {"S": "companies"}})
for page in client.get_paginator("query").paginate(**query):
    for item in page["Items"]:
        catalog[item["Company Name"]["S"]] = {
            "first": item["First"]["S"], "last": item["Last"]["S"],
            "close": item["Close"]["N"], "bars": int(item["Bars"]["N"]),
        }
for company in sorted(set(stored) | set(catalog)):
    print(json.dumps({"company": company, "catalog": catalog.get(company), "stored": stored.get(company)}))
