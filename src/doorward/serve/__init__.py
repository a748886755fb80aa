"""``doorward serve --workers N``'s supervisor: the uvicorn workers, the hashing processes they share,
and when a dead one's successor starts."""
