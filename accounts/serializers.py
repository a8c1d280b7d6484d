from __future__ import annotations

from rest_framework import serializers

from accounts.models import ApiKey, Invitation, Membership, Organization, Role


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()


class OrganizationOutput(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "is_personal", "created_at", "role"]

    def get_role(self, obj: Organization) -> str | None:
        roles = self.context.get("roles") or {}
        return roles.get(obj.pk)


class OrganizationInput(serializers.Serializer):
    name = serializers.CharField(max_length=120, min_length=2)


class MeOutput(serializers.Serializer):
    user = UserOutput()
    organizations = OrganizationOutput(many=True)
    current_organization = OrganizationOutput(allow_null=True)
    auth = serializers.ChoiceField(choices=["api_key", "session_token", "session"])


class MembershipOutput(serializers.ModelSerializer):
    user = UserOutput()

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]


class RoleInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationOutput(serializers.ModelSerializer):
    status = serializers.CharField()
    invited_by = serializers.EmailField(source="invited_by.email", allow_null=True, default=None)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "invited_by", "created_at", "expires_at"]


class InvitationInput(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class ApiKeyOutput(serializers.ModelSerializer):
    is_active = serializers.BooleanField()

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "role", "is_active", "created_at", "last_used_at", "revoked_at"]


class ApiKeyCreatedOutput(ApiKeyOutput):
    key = serializers.CharField(help_text="The full key. Shown in this response only; store it now.")

    class Meta(ApiKeyOutput.Meta):
        fields = [*ApiKeyOutput.Meta.fields, "key"]


class ApiKeyInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    role = serializers.ChoiceField(
        choices=[c for c in Role.choices if c[0] != Role.OWNER], default=Role.MEMBER
    )
