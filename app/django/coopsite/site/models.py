from django.db import models


class Visit(models.Model):
    """One request to the index page: a row written per visit, as a real app writes."""

    at = models.DateTimeField(auto_now_add=True)
    path = models.CharField(max_length=200)
