"""Reads items of a DynamoDB table by key with boto3 (the original project's
client) and prints each as JSON in DynamoDB's typed form ({"S": ...}, {"N": ...}).
Usage: ddb_get.py ENDPOINT TABLE COMPANY DATE [DATE ...]"""
import json, sys
import boto3

endpoint, table, company, dates = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
for date in dates:
    item = client.get_item(TableName=table, Key={"Company Name": {"S": company}, "Date": {"S": date}}).get("Item")
    print(json.dumps(item, sort_keys=True))
