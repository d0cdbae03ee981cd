"""Team review: the review index and queues."""

from django.shortcuts import render
from django.urls import path


def review_index(request):
    # Review queues arrive with the review capability; until then the page says how.
    return render(request, "experiments/review.html", {"section": "review"})


urlpatterns = [
    path("review/", review_index, name="review"),
]
