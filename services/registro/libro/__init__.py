"""The libro de registro: the book of a period as CSV or PDF, exported as a background job."""
