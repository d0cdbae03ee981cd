from django.shortcuts import render


def worlds_index(request):
    return render(request, "simulator/worlds.html", {"section": "simulator"})
