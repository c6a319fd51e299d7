"""The API gateway: the one public HTTP entrance in front of the Consistorio services."""
