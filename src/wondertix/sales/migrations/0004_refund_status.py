from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    """Refunds get a state (pending → succeeded | failed); refunds written before were
    completed in one transaction, so they are succeeded."""

    dependencies = [
        ('payments', '0001_initial'),
        ('sales', '0003_hold_idempotency_key'),
    ]

    operations = [
        migrations.AddField(
            model_name='refund',
            name='status',
            field=models.CharField(choices=[('pending', 'Pending'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], db_index=True, default='succeeded', max_length=10),
        ),
        migrations.AlterField(
            model_name='refund',
            name='status',
            field=models.CharField(choices=[('pending', 'Pending'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], db_index=True, default='pending', max_length=10),
        ),
        migrations.AddField(
            model_name='refund',
            name='message',
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AddField(
            model_name='refund',
            name='before',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name='refundsource',
            name='charge',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='refunded_by', to='payments.payment'),
        ),
        migrations.AddField(
            model_name='refundsource',
            name='refund',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='sources', to='sales.refund'),
        ),
        migrations.AddField(
            model_name='refundsource',
            name='provider_key',
            field=models.CharField(blank=True, max_length=200),
        ),
    ]
