"""Counts the items of a DynamoDB table with boto3 (a full scan).
Usage: ddb_count.py ENDPOINT TABLE"""
import sys
import boto3

endpoint, table = sys.argv[1:3]
client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
total, kwargs = 0, {"TableName": table, "Select": "COUNT"}
while True:
    page = client.scan(**kwargs)
    total += page["Count"]
    if "LastEvaluatedKey" not in page:
        break
    kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
print(total)
