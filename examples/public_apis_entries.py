import requests
from lib import outputStream

# Peak's first example: every entry of the public-apis catalogue, one record each.
response = requests.get("http://127.0.0.1:8765/entries")
data = response.json()
for entry in data["entries"]:
    outputStream.write(entry)
