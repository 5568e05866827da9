"""Puts one item, given as JSON in DynamoDB's typed form ({"S": ...}), with
boto3. Usage: ddb_put_item.py ENDPOINT TABLE ITEM_JSON"""
import json, sys
import boto3

endpoint, table, item = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
client.put_item(TableName=table, Item=item)
print("put")
