"""Writes CSV rows in the original project's layout into a DynamoDB table the
way its consumer notebook did: boto3 `put_item`, one item per row, the table
created if missing. Usage: ddb_put_rows.py ENDPOINT TABLE CSV_FILE"""
import csv, sys
from decimal import Decimal
import boto3

endpoint, table, path = sys.argv[1:4]
client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
if table not in client.list_tables()["TableNames"]:
    client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "Company Name", "KeyType": "HASH"},
                                   {"AttributeName": "Date", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "Company Name", "AttributeType": "S"},
                                              {"AttributeName": "Date", "AttributeType": "S"}])
    client.get_waiter("table_exists").wait(TableName=table)
resource = boto3.resource("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x").Table(table)
written = 0
with open(path) as f:
    for row in csv.DictReader(f):
        resource.put_item(Item={
            "Company Name": row["Company Name"], "Date": row["Date"],
            **{k: Decimal(row[k]) for k in ("Open", "High", "Low", "Close", "Volume")},
        })
        written += 1
print(written)
