"""`fourreal batch`: many scenes on Ray, one `fourreal run` per item (command.py; items.py reads the items file,
worker.py runs one item on a Ray worker, report.py writes batch.json and the gallery)."""
