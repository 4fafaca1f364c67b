from lib import connection, outputStream

# `connection` fetches a token from the connection's authorization URL, sends it on every
# request, and fetches a new one when the API answers 401.
page = 1
while page:
    response = connection.get("http://127.0.0.1:8765/protected/data", params={"page": page})
    response.raise_for_status()
    body = response.json()
    for record in body["data"]:
        outputStream.write(record)
    page = body["next_page"]
