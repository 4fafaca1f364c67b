import requests
from lib import outputStream, metadata

# Peak's second example: an incremental fetch. The cursor saved with metadata.save() comes
# back in `metadata` on the next run, once this run's data is safely loaded.
r = requests.get("http://127.0.0.1:8765/get-data", params={"from": metadata.get("next", 1), "limit": 1000})
for record in r.json()["data"]:
    outputStream.write(record)
metadata.save({"next": r.json()["next"]})
