from __future__ import annotations

from django import forms

from accounts.models import Role


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=120, min_length=2, widget=forms.TextInput(attrs={"class": "input"}))


class InvitationForm(forms.Form):
    email = forms.EmailField(
        widget=forms.EmailInput(attrs={"class": "input", "placeholder": "teammate@example.com"})
    )
    role = forms.ChoiceField(
        choices=Role.choices, initial=Role.MEMBER, widget=forms.Select(attrs={"class": "input"})
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, widget=forms.Select(attrs={"class": "input"}))


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100, widget=forms.TextInput(attrs={"class": "input", "placeholder": "e.g. CI pipeline"})
    )
    role = forms.ChoiceField(
        choices=[c for c in Role.choices if c[0] != Role.OWNER],
        initial=Role.MEMBER,
        widget=forms.Select(attrs={"class": "input"}),
    )
