"""Media messages: what a file is (sniff.py), whether it may be sent and as what (rules.py), where its bytes are
kept (files.py: a directory on one machine, GridFS on MongoDB), fetching one from a URL (fetch.py), and collecting
files no message needs any more (collect.py)."""
