### Бот NanoGen: русские тексты.
###
### Один файл на язык, в каждом те же id сообщений (тест сверяет id и
### переменные). CREDITS($n) пишет число кредитов с существительным в форме
### из сообщения `credits` ниже. Формы выбираются по правилам CLDR: one (1, 21,
### 101...), few (2-4, 22-24...), many (0, 5-20, 25-30...), other (дроби).
### Числа пишутся по-русски (1 000); id и ссылки приходят готовым текстом.
### Ограничения Bot API: заголовок счёта 1-32 символа, описание 1-255, подписи
### кнопок короткие, ответ на нажатие кнопки до 200 символов.


## Общее

credits = { $count ->
    [one] { $count } кредит
    [few] { $count } кредита
    [many] { $count } кредитов
   *[other] { $count } кредита
}
balance-line = Ваш баланс: { CREDITS($balance) }.
account-banned = Этот аккаунт заблокирован.
button-open-app = Открыть NanoGen
# Кнопка выбора, который сейчас действует.
button-selected = ✓ { $label }
button-back = « Назад
unknown-command = Такой команды я не знаю. Список команд — в /help, а можно просто написать, что нарисовать.


## /start

# $name: имя пользователя в Telegram.
start-greeting-new = Добро пожаловать в NanoGen, { $name }! Для начала дарим вам { CREDITS($welcome) }.
start-greeting-back = С возвращением, { $name }!
# Подставляется в $name, если Telegram не сообщил имя.
start-default-name = друг
start-intro = Опишите картинку словами, и я нарисую её с помощью ИИ. Цены и команды — в /help.


## /balance

balance-in-progress = Рисуется картинок: { $active }.
balance-buy-hint = Пополнить баланс — /buy.


## Команды: список в /help и меню команд Telegram (setMyCommands, до 256 символов)

command-start = Приветствие и баланс
command-balance = Сколько у вас кредитов
command-buy = Купить кредиты за Telegram Stars
command-settings = Модель и формат картинки
command-language = Сменить язык
command-history = Последние картинки
command-promo = Ввести промокод
command-invite = Пригласить друзей и получить кредиты
command-paysupport = Помощь с оплатой
command-terms = Условия использования
command-help = Что я умею


## /help

help-intro =
    NanoGen рисует картинки с помощью ИИ.
    Пришлите описание (до { $max_chars ->
        [one] { $max_chars } символа
       *[other] { $max_chars } символов
    }), и картинка придёт в этот чат. Модель и формат берутся из /settings.
help-edit-photo = Чтобы изменить картинку, пришлите её с подписью, что поменять, или ответьте на неё сообщением с указанием.
help-prices-title = Цены:
# Строка на каждую модель.
help-price-line = • { $model }: { CREDITS($cost) } за картинку
help-commands-title = Команды:
# Строка на каждую команду; $description: один из текстов command-*.
help-command-line = /{ $command } — { $description }
help-refund-note = Если картинка не получилась, она ничего не стоит: кредиты возвращаются.


## /buy: счета в Telegram Stars, по одному на пакет кредитов

# Заголовок счёта и подпись цены: не больше 32 символов.
pack-title = { CREDITS($credits) }
pack-description = { CREDITS($credits) } на картинки с ИИ в NanoGen.
# $discount: на сколько процентов кредит дешевле, чем в пакете на $base_credits.
pack-description-discount = { CREDITS($credits) } на картинки с ИИ в NanoGen: каждый кредит на { $discount }% дешевле, чем в пакете на { $base_credits }.
# Telegram показывает это, если платёж отклонён до оплаты.
pre-checkout-unknown-pack = Это предложение больше не действует. Актуальные пакеты — в /buy.
pre-checkout-other-buyer = Этот счёт выставлен для другого аккаунта Telegram. Откройте приложение, чтобы купить кредиты.
pre-checkout-wrong-price = Цена пакета изменилась. Отправьте /buy, чтобы получить новый счёт.
payment-credited = Спасибо! Добавили вам { CREDITS($credits) }. Ваш баланс: { CREDITS($balance) }.


## /settings: модель и формат, выбираются кнопками

settings-text =
    Ваши настройки:
    Модель: { $model }
    Формат: { $aspect_ratio }
    Одна картинка стоит { CREDITS($cost) }.
settings-choose-model = Выберите модель:
settings-choose-aspect-ratio = Выберите формат:
settings-button-model = Модель: { $model }
settings-button-aspect-ratio = Формат: { $aspect_ratio }
# Кнопка модели: название и цена одной картинки.
settings-model-option = { $model } · { CREDITS($cost) }
# Ответ на нажатие, когда выбор сохранён.
settings-saved = Сохранено
# У выбранной модели нет сохранённого формата.
settings-aspect-ratio-reset = У { $model } нет формата { $aspect_ratio }, будет { $fallback }.


## /language

language-choose = Выберите язык:
language-button-ru = Русский
language-button-en = English
# Говорится на только что выбранном языке.
language-set = Язык: русский.


## Картинки, заказанные в чате

generation-queued =
    Принято! { $model } рисует вашу картинку, скоро она придёт в этот чат.
    Стоимость: { CREDITS($cost) }.
# То же сообщение пришло ещё раз (Telegram отправил его повторно).
generation-replay-completed = Эта картинка уже нарисована и отправлена в этот чат.
generation-replay-ended = Картинка по этому сообщению { $status ->
        [failed] не получилась
       *[cancelled] отменена
    }; пришлите описание ещё раз.
generation-replay-queued = Картинка уже в очереди и скоро придёт в этот чат; кредиты списаны один раз.
# Добавляется к четырём сообщениям выше, когда баланс после списания известен.
generation-balance = Баланс: { CREDITS($balance) }.
# Названия состояний, для /history.
generation-status = { $status ->
        [pending] В очереди
        [processing] Рисуется
        [completed] Готово
        [failed] Не получилась
       *[cancelled] Отменена
    }


## Почему картинка не заказана

refusal-insufficient-credits = Не хватает кредитов: эта картинка стоит { CREDITS($cost) }. Пополнить баланс — /buy.
refusal-rate-limited = Слишком много картинок за минуту. Попробуйте через { $seconds ->
        [one] { $seconds } секунду
        [few] { $seconds } секунды
        [many] { $seconds } секунд
       *[other] { $seconds } секунды
    }.
refusal-too-many-active = Одновременно рисуется не больше { $limit ->
        [one] { $limit } картинки
       *[other] { $limit } картинок
    }. Дождитесь, пока одна будет готова.
refusal-prompt-too-long = Описание слишком длинное: можно до { $max_chars ->
        [one] { $max_chars } символа
       *[other] { $max_chars } символов
    }, а в вашем { $length }.
# Модель или формат больше не подходят (старая настройка, изменённый каталог).
refusal-invalid-settings = С текущими настройками эту картинку не нарисовать. Проверьте их в /settings.
refusal-unknown = Не удалось заказать картинку. Попробуйте ещё раз через минуту.


## Картинка не получилась (кредиты возвращаются)

# $reason: один из текстов failure-reason-*.
generation-failed =
    К сожалению, картинка не получилась: { $reason }
    Мы вернули на баланс { CREDITS($cost) }.
failure-reason-timeout = она слишком долго ждала в очереди.
failure-reason-rejected = сервис изображений отклонил это описание или картинки.
failure-reason-unavailable = сервис изображений сейчас недоступен.
failure-reason-failed = сервис изображений не смог её нарисовать.
failure-reason-retries = сервис изображений раз за разом давал сбой; попробуйте позже.


## Кнопки под готовой картинкой и ответы на нажатие (до 200 символов)

button-again = 🔁 Ещё раз
button-edit = ✏️ Изменить
button-original = 📎 Оригинал
callback-again-queued = Снова в очереди. Стоимость: { CREDITS($cost) }.
callback-again-already = Уже рисуется заново: нажатия подряд считаются одним.
callback-again-pictures-gone = Картинки для этой правки больше не хранятся. Пришлите фото ещё раз и напишите, что изменить.
callback-original-sent = Отправляю оригинал.
# Кнопка из старого сообщения или данные, которые создали не мы.
callback-stale = Эта кнопка устарела.


## Редактирование картинок: фото, файлы-картинки и альбомы в чате, ответы на картинки

# После кнопки «Изменить» под готовой картинкой.
edit-ask-instruction = Напишите, что изменить на этой картинке.
# Фото или файл-картинка без подписи.
edit-photo-remembered = Картинка получена! Что на ней изменить? Напишите указание следующим сообщением или ответьте им на картинку.
# Альбом без подписи; $pictures: сколько его картинок будет отредактировано вместе.
edit-album-remembered = { $pictures ->
        [1] Картинка получена! Что на ней изменить?
        [one] { $pictures } картинка получена! Что с ними сделать?
        [few] { $pictures } картинки получены! Что с ними сделать?
        [many] { $pictures } картинок получено! Что с ними сделать?
       *[other] { $pictures } картинки получены! Что с ними сделать?
    } Напишите указание следующим сообщением.
edit-not-an-image = Я редактирую только картинки: пришлите фото или файл JPEG, PNG или WebP с подписью, что изменить.
edit-sticker-refused = Стикеры редактировать нельзя. Пришлите фото или файл JPEG, PNG или WebP с подписью, что изменить.
# Файл, присланный как картинка, но внутри не картинка.
edit-not-a-picture-file = Этот файл — не картинка JPEG, PNG или WebP, поэтому отредактировать его не получится.
edit-too-large = Картинка слишком большая: я редактирую картинки размером до { $max_mb } МБ.
edit-download-failed = Не удалось получить эту картинку из Telegram. Пожалуйста, пришлите её ещё раз.
# Ответ на картинку, которую бот отправил другому человеку.
edit-not-yours = Я редактирую только картинки из этого чата. Пришлите саму картинку с подписью, что изменить.
# $pictures: сколько картинок редактируется вместе (от 1 до предела модели).
edit-queued =
    Принято! { $model } редактирует { $pictures ->
        [1] вашу картинку
        [one] { $pictures } картинку
        [few] { $pictures } картинки
        [many] { $pictures } картинок
       *[other] { $pictures } картинки
    }, результат скоро придёт в этот чат.
    Стоимость: { CREDITS($cost) }.
# То же сообщение или альбом пришли ещё раз (Telegram отправил повторно). Может следовать generation-balance.
edit-replay-queued = Эта картинка уже редактируется; кредиты списаны один раз.
# В альбоме больше картинок, чем принимает модель; $sent: сколько прислал пользователь.
edit-album-trimmed = { $model } принимает не больше { $max_images } фото, поэтому { $max_images ->
        [1] беру только первое из { $sent }.
       *[other] беру первые { $max_images } из { $sent }.
    }
# Фото из альбома, пришедшее, когда правка альбома уже началась (или бот уже спросил указание).
edit-album-photo-late = Эта картинка пришла слишком поздно и не вошла в альбом для редактирования: он уже собран без неё. За неё ничего не списано. Чтобы изменить её, пришлите её ещё раз с подписью, что поменять, или в новом альбоме.


## /history: последние 10 картинок

history-title = Ваши последние картинки:
# $status: текст generation-status; $prompt: сокращённое описание.
history-item = { $number }. { $status }: { $prompt }
history-empty = Картинок пока нет. Пришлите описание, и я нарисую первую.


## /paysupport

paysupport-contact = С вопросами об оплате пишите { $contact }. Укажите код платежа из списка ниже.
paysupport-purchases-title = Ваши последние покупки:
# $charge_id: сокращённый id платежа в Telegram; $date: ГГГГ-ММ-ДД.
paysupport-purchase-item = { $date }: { CREDITS($credits) } за { $stars } ⭐ (платёж { $charge_id })
paysupport-no-purchases = Покупок пока нет.
paysupport-forwarded = Мы передали ваш запрос команде, вам ответят здесь, в Telegram.
# Не настроены ни SUPPORT_CONTACT, ни чат оператора.
paysupport-unavailable = Поддержка по оплате пока не настроена. Попробуйте позже.
# Уходит в чат оператора (ALERT_CHAT_ID). $link открывает чат с пользователем.
paysupport-operator =
    { $name } (id { $user_id }) просит помочь с оплатой.
    Написать: { $link }
    Последние покупки:
    { $purchases }


## /terms

terms-link = Условия использования: { $url }
terms-builtin =
    Условия NanoGen, коротко:
    • Кредиты покупаются за Telegram Stars и тратятся на картинки; обратно на деньги они не меняются.
    • Если картинка не получилась, она ничего не стоит: кредиты сами возвращаются на баланс.
    • С проблемой по оплате — в /paysupport.
    • Не просите незаконное и картинки с реальными людьми, которые могут им навредить: за это аккаунт могут заблокировать.
    • Картинки рисуют сторонние ИИ-сервисы. Мы храним ваши описания и картинки, чтобы они были в вашей истории.


## /promo

promo-usage = Напишите код после команды, например: /promo SPRING
promo-granted = Код принят: добавили вам { CREDITS($credits) }. Ваш баланс: { CREDITS($balance) }.
promo-unknown = Такого кода нет или срок его действия истёк.
promo-already-redeemed = Вы уже воспользовались этим кодом.
promo-exhausted = Лимит активаций этого кода исчерпан.


## /invite: реферальная ссылка

invite-text =
    Приглашайте друзей по своей ссылке: { $link }
    Когда друг сделает первую покупку, вы получите { CREDITS($bonus) }.
    Приглашено друзей: { $invited }. Заработано кредитов: { $earned }.
invite-disabled = Приглашения сейчас отключены.
