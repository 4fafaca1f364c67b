from lib import connection, outputStream

# `connection` is a requests.Session with the feed connection's Basic Auth applied.
response = connection.get("http://127.0.0.1:8765/basic/entries")
response.raise_for_status()
for entry in response.json()["entries"]:
    outputStream.write(entry)
