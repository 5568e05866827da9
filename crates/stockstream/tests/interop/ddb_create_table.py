"""Creates a DynamoDB table with a given key schema (boto3), for schema tests.
Usage: ddb_create_table.py ENDPOINT TABLE HASH_KEY RANGE_KEY"""
import sys
import boto3

endpoint, table, hash_key, range_key = sys.argv[1:5]
client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                    KeySchema=[{"AttributeName": hash_key, "KeyType": "HASH"},
                               {"AttributeName": range_key, "KeyType": "RANGE"}],
                    AttributeDefinitions=[{"AttributeName": hash_key, "AttributeType": "S"},
                                          {"AttributeName": range_key, "AttributeType": "S"}])
print("created")
